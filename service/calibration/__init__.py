"""Calibration: the ratings workflow (propose, calibrate; finalising is the bias gate's),
calibration panels with their cohorts and 9-box grids, and the side-by-side cohort view a
panel works from, pseudonymised by default. Plain functions over a connection: the API and
the web pages decide who may call which."""
