"""Figures: the style shared by all plots, the comparison plots and the time-series figures."""
