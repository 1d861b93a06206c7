//! `F.normalize(x, dim=-1)` as the dynamo exporter writes it (Swin v2's cosine attention),
//! found before translation ([`find_normalizations`]): one `l2_normalize` node on `x` and `y`
//! (the norm held constant, [`crate::model::Normalize`]).

use onnx_ir::Node as OnnxNode;

use super::convert::{Converter, Failure};
use super::patterns::{NormalizeFound, find_normalizations};
use crate::model::{Normalize, Op};

impl Converter<'_> {
    /// Registers the normalizations of `nodes`.
    pub fn find_normalizations(&mut self, nodes: &[&OnnxNode]) {
        for found in find_normalizations(nodes) {
            self.folded.extend(found.folded.iter().cloned());
            self.normalizations.insert(found.div.clone(), found);
        }
    }

    /// The `Div` of a normalization: one node on the value and the value of its norm, which
    /// must be laid out alike and normalized over a sample's last axis.
    pub(super) fn normalize(
        &mut self,
        node: &OnnxNode,
        found: NormalizeFound,
    ) -> Result<(), Failure> {
        let [x, y] = [&found.x, &found.y].map(|name| self.named_activation(name));
        let (x, y) = (x?, y?);
        self.last_axis(&x)?;
        let op = Op::Normalize(Normalize {
            epsilon: found.epsilon,
        });
        self.push_laid(node, op, &[x, y])
    }
}
