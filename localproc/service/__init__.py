"""The use cases both front doors call: validate, plan, run, start detached, reproduce,
describe, list, stop, delete, logs, gc."""
