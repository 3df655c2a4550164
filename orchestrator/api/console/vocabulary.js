// The names the server defines once and serves at GET /api/vocabulary: job states (and which
// are terminal), job kinds, model and endpoint tasks. Loaded with the user at sign-in.

export const vocabulary = {
  job_statuses: [], terminal_statuses: [], job_kinds: [], model_tasks: [], endpoint_tasks: [],
};

export const learn = (words) => Object.assign(vocabulary, words);

export const isTerminal = (status) => vocabulary.terminal_statuses.includes(status);
