module sluice.dev/bench

go 1.19
