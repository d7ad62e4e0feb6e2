"""TCP line receiver: LabVIEW programs and microcontrollers push JSON, CSV or line protocol."""
