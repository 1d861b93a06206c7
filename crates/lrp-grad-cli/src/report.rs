//! `evaluate`'s outputs: the table on stdout, the JSON report and the PNG of the curves.

use std::path::Path;

use anyhow::Result;
use lrp_grad::plots::{self, Chart};
use serde_json::json;

use crate::evaluate::Row;

/// The columns in order of first appearance.
fn columns(rows: &[Row]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (name, _) in rows
        .iter()
        .flat_map(|r| r.measured.iter().flat_map(|m| &m.values))
    {
        if !out.contains(name) {
            out.push(*name);
        }
    }
    out
}

fn value(row: &Row, column: &str) -> Option<f64> {
    (row.measured.iter().flat_map(|m| &m.values))
        .find(|(name, _)| *name == column)
        .map(|(_, v)| *v)
}

/// Markdown: one row per method, one column per measured value (means over samples).
pub(crate) fn table(n: usize, rows: &[Row]) -> String {
    let columns = columns(rows);
    let mut out = format!(
        "{n} samples; means per method\n\n| method | {} |\n|---|{}\n",
        columns.join(" | "),
        "---|".repeat(columns.len())
    );
    for r in rows {
        let cells: Vec<String> = (columns.iter())
            .map(|c| value(r, c).map_or("–".into(), |v| format!("{v:.4}")))
            .collect();
        out += &format!("| {} | {} |\n", r.method, cells.join(" | "));
    }
    out
}

/// Per method: the measured means under `metrics` and each mean curve under its key
/// (`pixel_flipping`, `road`, `mprt` with its layers, …).
pub(crate) fn json(n: usize, rows: &[Row]) -> Result<Vec<u8>> {
    let methods: Vec<_> = (rows.iter())
        .map(|r| {
            let mut method = serde_json::Map::new();
            method.insert("method".into(), json!(r.method));
            let values: serde_json::Map<_, _> = (r.measured.iter().flat_map(|m| &m.values))
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            method.insert("metrics".into(), values.into());
            for curve in r.measured.iter().filter_map(|m| m.curve.as_ref()) {
                method.insert(curve.key.into(), json!(curve.values));
                if !curve.x_names.is_empty() {
                    method.insert(format!("{}_steps", curve.key), json!(curve.x_names));
                }
            }
            serde_json::Value::Object(method)
        })
        .collect();
    Ok(serde_json::to_vec_pretty(
        &json!({"samples": n, "methods": methods}),
    )?)
}

/// One panel per metric with a curve, one line per method (its area in the legend).
pub(crate) fn plot(path: &Path, rows: &[Row]) -> Result<()> {
    let mut charts: Vec<Chart> = Vec::new();
    for r in rows {
        for curve in r.measured.iter().filter_map(|m| m.curve.as_ref()) {
            let at = match charts.iter().position(|c| c.title == curve.title) {
                Some(at) => at,
                None => {
                    charts.push(Chart {
                        title: curve.title.into(),
                        x_label: curve.x_label.into(),
                        y_label: curve.y_label.into(),
                        series: Vec::new(),
                        x_names: curve.x_names.clone(),
                    });
                    charts.len() - 1
                }
            };
            let area = lrp_grad::metrics::auc(&curve.values);
            let label = format!("{} (area {area:.3})", r.method);
            charts[at].series.push((label, curve.values.clone()));
        }
    }
    Ok(plots::write_panels(path, &charts, 3)?)
}
