"""Data steps: preparing atomic datasets, item text -> .itememb, and reading it back checked."""
