"""The stress lab (SPEC §13): scenarios of real or synthetic prices and agent populations,
driven through the real engine path by path; risk metrics as a risk firm defines them; Monte
Carlo over seeds and parameter grids, on local processes or a Ray cluster; an HTML report.

Not in ``clearhouse.core``: it chooses agents' behaviour and draws random paths (every path from
its own seed, so any path can be run again, alone, and written out as a journal).
"""
