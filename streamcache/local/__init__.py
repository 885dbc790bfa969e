"""Everything that makes the system run on one laptop with no AWS account."""
