"""Reports: the daily temperature log of a room (records at the GSP interval, min / max /
mean, excursions, acknowledgements) and the excursion report with mean kinetic temperature
for a date range; as CSV, PDF and a printable HTML page, served by :mod:`.api`.

The calculations (:mod:`.mkt`, :mod:`.series`, :mod:`.excursions`, :mod:`.build`) are pure;
:mod:`.load` reads the store and the alert tables; :mod:`.csvout`, :mod:`.pdfout` and
:mod:`.htmlout` render. See docs/reports.md.
"""
