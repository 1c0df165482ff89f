/** Sockets: sock_diag query and SOCK_DESTROY (issue #4). */
export {};
