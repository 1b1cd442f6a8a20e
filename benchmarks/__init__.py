"""localproc's benchmarks: `python benchmarks/run.py [--quick] [--only NAME...]`.

Run on demand, never as timed tests. Every figure is a median over repeats and is compared with a
baseline measured in the same run; the table goes to docs/benchmarks.md.
"""
