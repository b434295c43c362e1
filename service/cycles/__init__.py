"""Review cycles: a named period with its rating scale and, once HR sets it up, its
participants rule, reviews asked, scale labels, questions and phases (setup.py checks a
set-up, setup_store.py stores, changes, copies and starts it), and everyone's tasks
(tasks.py). The room every cycle-scoped feature (ratings, panels, drafting a cycle, the bias
report) reads, and the one place a cycle is created."""
