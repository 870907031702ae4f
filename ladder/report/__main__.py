"""``python -m ladder.report RESULTS_DIR ...``: the same as scripts/roadmap.py."""
from ladder.report.cli import main

main()
