"""Ratings, one package: imported from HR's ratings.csv (the rows stored here, the file read
by ingest), proposed by a rater, calibrated by a panel, finalised after the cycle's check.
The bias analysis of ratings is the bias room's (service/bias/ratings.py)."""
