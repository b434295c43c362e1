"""Drafting: evidence pack in, a draft whose every sentence cites its evidence out."""
