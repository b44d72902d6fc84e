"""Questions around the day: import, search, and the written answers' deadlines."""
