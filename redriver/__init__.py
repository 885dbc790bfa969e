"""The redriver Lambda: OnFailure records on the failure queue -> every key of their range invalidated."""
