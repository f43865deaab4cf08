"""Notification channels implementing ``engine.notify.Notifier``: SMTP e-mail and chat-robot webhooks."""
