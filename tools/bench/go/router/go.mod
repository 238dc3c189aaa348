module sluice-bench-router

go 1.19
