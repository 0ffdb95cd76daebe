"""Data: one module per data kind (synthetic, text, series, audio) and named data sets."""
