-- Runs once, when the postgres volume is first initialised. POSTGRES_DB creates the MLflow backend
-- database; the decision audit trail gets a database of its own beside it.
CREATE DATABASE loanrisk_audit;
