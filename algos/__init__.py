"""Execution algorithms: small event-driven state machines that emit commands to the OrderManager."""
