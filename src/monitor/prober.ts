/** Prober: BFD-style ICMP path probing (issue #3). */
export {};
