"""Lead columns the learning-loop tests leave out to make a clearly worse model."""

#: Without its strongest inputs the lead model is clearly worse.
WEAK = [
    "Total Time Spent on Website",
    "Lead Origin",
    "Lead Source",
    "Last Activity",
    "Last Notable Activity",
    "What is your current occupation",
    "Lead Profile",
    "Page Views Per Visit",
    "TotalVisits",
]
