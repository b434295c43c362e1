"""One router per audience: sign-in, employees, drafts, managers, panels, HR."""
