"""Architecture comparisons: studies of cells x settings x seeds, run and reported.

- ``study_spec``: the study file (schema, loading by path or shipped name).
- ``expansion``: a study's runs, each a full experiment config with a readable name.
- ``records``: what a study leaves per run (``result.json``) and in all (the study result).
- ``stoppers``: callbacks ending a run at its time budget or once it reaches a target.
- ``runner``: training the runs (resumably, in parallel) and recording them.
- ``table``: the study table (mean ± std over seeds per configuration).
- ``study_plots``: validation curves and metric against length.
- ``gradient_section``: the gradient flow of the trained runs, plotted and put in words.
- ``study_report``: ``report.md`` and ``report.html``.
- ``workflow``: :func:`~rnnlab.analysis.comparison.workflow.compare`, what ``rnnlab compare``
  does (run, then report); also ``rnnlab.compare``.

The modules import each other directly; this package imports none of them.
"""
