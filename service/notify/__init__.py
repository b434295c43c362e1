"""Outbound messages: what a reminder says in each format (messages.py), email over SMTP
(email.py) and chat incoming webhooks (chat.py). Knows nothing of cycles or the database:
service/cycles/reminders.py decides who is told what, and records every outcome.

No function here logs a message's body, a recipient's address or a secret: a failure is
described by its kind and the server's status code alone (`DeliveryFailed`)."""
