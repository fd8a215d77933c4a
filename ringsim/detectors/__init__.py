"""Detector models: Fermilab calorimeters, lost-muon MIP hits, the sector stations, the J-PARC vanes, and their response."""
