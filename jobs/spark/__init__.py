"""Spark batch analytics (docs/analytics.md): pure DataFrame transforms per report, their sources
and the report tables; ``run.main()`` for spark-submit, ``twin spark report`` for people."""
