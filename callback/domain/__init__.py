"""The pure domain: records, rules and state machines; no Flask, Twilio, PynamoDB or boto."""
