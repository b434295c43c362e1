"""Who a request speaks for, and what they may see and do."""
