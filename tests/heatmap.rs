//! Colour maps and heatmaps against Zennit's own (`zennit.image.palette` / `imgify`).

use std::path::Path;

use lrp_grad::heatmap::{ColorMap, HeatmapError, heatmap};
use serde_json::Value;

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zennit/colormaps.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn every_built_in_palette_equals_zennits() {
    let fixture = fixture();
    for name in ColorMap::NAMES {
        let expected: Vec<u8> = numbers(&fixture["maps"][name]["palette"])
            .iter()
            .map(|v| *v as u8)
            .collect();
        let actual: Vec<u8> = ColorMap::new(name)
            .unwrap()
            .palette()
            .iter()
            .flatten()
            .copied()
            .collect();
        assert_eq!(actual, expected, "palette {name}");
    }
}

#[test]
fn symmetric_heatmaps_equal_zennits_imgify() {
    let fixture = fixture();
    let relevance: Vec<f32> = numbers(&fixture["relevance"])
        .iter()
        .map(|v| *v as f32)
        .collect();
    for name in ColorMap::NAMES {
        let image = heatmap(&relevance, 2, 5, 7, &ColorMap::new(name).unwrap()).unwrap();
        let expected: Vec<u8> = numbers(&fixture["maps"][name]["heatmap"])
            .iter()
            .map(|v| *v as u8)
            .collect();
        assert_eq!(image.into_raw(), expected, "heatmap {name}");
    }
}

#[test]
fn colour_map_code_and_errors() {
    // Two colours, black to white: the code of `gray`.
    assert_eq!(
        ColorMap::new("000,fff").unwrap(),
        ColorMap::new("gray").unwrap()
    );
    let err = ColorMap::new("rainbow").unwrap_err();
    assert!(matches!(err, HeatmapError::UnknownColorMap { .. }));
    assert!(
        err.to_string().contains("unknown colour map `rainbow`") && err.to_string().contains("bwr"),
        "{err}"
    );
    let err = heatmap(&[0.0; 5], 1, 2, 2, &ColorMap::new("bwr").unwrap()).unwrap_err();
    assert_eq!(
        err,
        HeatmapError::Shape {
            expected: 4,
            found: 5
        }
    );
}
