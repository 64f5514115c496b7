"""Scheduling: the instance model, file and request formats, solvers behind one interface
(CP-SAT, dispatch rules, simulated annealing and QAOA on a QUBO), and the feasibility check every
answer goes through. Pure: no Kafka, no wall clock except solver time limits."""
