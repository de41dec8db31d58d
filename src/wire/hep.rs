//! HEP v2/v3 (being written)
