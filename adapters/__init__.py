"""Broker routes implementing ``engine.broker.BrokerAdapter`` (file orders, QMT, GM)."""
