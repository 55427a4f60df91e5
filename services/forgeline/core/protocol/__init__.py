"""Model-driven AWS JSON 1.1 protocol: parse, validate, dispatch, serialize."""
