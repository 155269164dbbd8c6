"""Development tools: local run, phone simulator, Twilio stand-in and model, DynamoDB Local.

Never imported by the product, never in the Lambda package."""
