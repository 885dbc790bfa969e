"""Production operations: consistency sampling and checking, ``check``, ``warm``.

``sampling`` is imported by the invalidator and stays light (no boto3);
``check`` and ``warm`` are operator tools and import boto3 lazily.
"""
