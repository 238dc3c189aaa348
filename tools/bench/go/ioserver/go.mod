module sluice-bench-ioserver

go 1.19
