"""Figures. `genae plot DIR KIND` dispatches to the functions in `figures`."""
