//! `Einsum` as MaxViT's attention writes it: a product of two activations batched over the
//! same leading labels, `B G H I D, B G H J D -> B G H I J` (`Q·Kᵀ`) and `B G H I J, B G H J D
//! -> B G H I D` (`softmax·V`) — a graph `matmul` (AttnLRP's product rule), the second factor
//! transposed first where its last two labels come swapped. Other equations are refused.

use onnx_ir::Node as OnnxNode;

use super::convert::{Converter, Failure, Value, unique_name};
use crate::model::{FeatureShape, MatMul, Op};

/// How the two factors multiply: `A·B`, or `A·Bᵀ`.
#[derive(Debug, PartialEq)]
enum Product {
    Plain,
    Transposed,
}

impl Converter<'_> {
    pub(super) fn einsum(&mut self, node: &OnnxNode, equation: &str) -> Result<(), Failure> {
        let product = batched_product(equation).ok_or_else(|| {
            format!(
                "`{equation}`; lrp-grad takes products batched over the same leading labels (`…ik,…kj->…ij` or `…ik,…jk->…ij`)"
            )
        })?;
        let a = self.activation_input(node, 0)?;
        let mut b = self.activation_input(node, 1)?;
        if product == Product::Transposed {
            let name = format!("{}.b_t", unique_name(node));
            b = self.held(format!("{name}.in"), b)?;
            let [lead, j, k] = b.shape.dims()[..] else {
                return Err("its second factor is not held in three axes".into());
            };
            let id = self.graph.permute(name, [0, 2, 1], b.id);
            let mut layout = b.layout.clone();
            let last = layout.sample.len() - 1;
            layout.sample.swap(last - 1, last);
            let shape = FeatureShape::image(lead, k, j);
            b = Value { id, shape, layout };
        }
        self.push_laid(node, Op::MatMul(MatMul), &[a, b])
    }
}

/// The kind of product an equation is, when both inputs and the output share their leading
/// labels and the last two multiply as a matrix product.
fn batched_product(equation: &str) -> Option<Product> {
    let equation: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (inputs, output) = equation.split_once("->")?;
    let (a, b) = inputs.split_once(',')?;
    let [a, b, out]: [Vec<char>; 3] = [a, b, output].map(|s| s.chars().collect());
    let n = a.len();
    if n < 2
        || b.len() != n
        || out.len() != n
        || a[..n - 2] != b[..n - 2]
        || a[..n - 2] != out[..n - 2]
    {
        return None;
    }
    let (i, k) = (a[n - 2], a[n - 1]);
    let (j_out, i_out) = (out[n - 1], out[n - 2]);
    if i_out != i || k == i || k == j_out {
        return None;
    }
    match (b[n - 2], b[n - 1]) {
        (bk, bj) if bk == k && bj == j_out => Some(Product::Plain),
        (bj, bk) if bk == k && bj == j_out => Some(Product::Transposed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxvits_equations_are_batched_products() {
        let qk = "B G H I D, B G H J D -> B G H I J";
        let av = "B G H I J, B G H J D -> B G H I D";
        assert_eq!(batched_product(qk), Some(Product::Transposed));
        assert_eq!(batched_product(av), Some(Product::Plain));
        assert_eq!(batched_product("bij,bjk->bik"), Some(Product::Plain));
        assert_eq!(batched_product("bij,bjk->bki"), None, "a transposed output");
        assert_eq!(
            batched_product("bij,cjk->bik"),
            None,
            "different batch labels"
        );
        assert_eq!(batched_product("ii->i"), None);
    }
}
