"""The invalidator Lambda: DynamoDB stream records -> versioned Redis writes."""
