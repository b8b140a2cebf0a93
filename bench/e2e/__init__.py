"""The parts of ``bench/verify_e2e.py``: processes and databases (``services``), load and
measurement (``load``), tables, headlines and the budget check (``report``)."""
