"""Secrets Manager rotation for the stack's ElastiCache RBAC users."""
