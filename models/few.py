"""How many rows are "few": the one threshold between per-row Python and vectorised NumPy.

Every step of the scoring path that has two implementations (encoding the records, the policy's
scores, bands and decisions, the decision ids, the probability histogram) takes the per-row one up
to ``FEW_ROWS`` rows and NumPy beyond. Each NumPy call costs microseconds whatever the number of
rows, so for one applicant (most requests) the per-row path wins; for a batch, NumPy does.

Measured on the benchmark model, per call for one applicant, per-row Python against NumPy
(best of 7 runs of 2,000 calls, a busy 2-core machine): encoding 19 µs against 96, policy 3
against 29, ids 4 against 20, histogram 1 against 33: about 170 µs of a single-applicant
request, which is why all four fast paths stay. The crossover lies between 4 and 16 rows for all
of them; 8 is within it.
"""

FEW_ROWS = 8
