//! Integration tests and examples of lrp-grad live in `tests/` and `examples/`.
