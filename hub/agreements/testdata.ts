/** Shared test documents. */
export const EXAMPLE_YAML = `agreement:
  provider: org-a            # organisation providing resources
  consumer: org-b
  resources:
    cpu:    { limit: "1000 cores", priority: high }
    memory: { limit: "4 TB",       priority: medium }
  scheduling:
    preemption: true
    max_burst: "1.5x"
  billing:
    model: pay-per-use
    rate_card: standard-2024
`;
