// Node sqs-consumer peer: consume N messages with a batch handler (10 per receive), CONCURRENCY
// Consumer instances polling in parallel (sqs-consumer polls one receive at a time each).
// The clock stops when the N-th message is deleted ("message_processed" is emitted after
// DeleteMessageBatch), as for the other contenders.
// Usage: node consume.js ENDPOINT QUEUE N CONCURRENCY  -> one JSON line.
const { Consumer } = require("sqs-consumer");
const { SQSClient, GetQueueUrlCommand } = require("@aws-sdk/client-sqs");

async function main() {
  const [endpoint, queue, nArg, concurrencyArg] = process.argv.slice(2);
  const n = Number(nArg);
  const concurrency = Number(concurrencyArg);
  const sqs = new SQSClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "x", secretAccessKey: "x" },
  });
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: queue }));
  let deleted = 0;
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  await new Promise((resolve) => {
    const consumers = [];
    for (let i = 0; i < concurrency; i++) {
      const consumer = Consumer.create({
        queueUrl: QueueUrl,
        sqs,
        batchSize: 10,
        waitTimeSeconds: 1,
        messageAttributeNames: ["All"],
        handleMessageBatch: async (messages) => {
          for (const message of messages) {
            const body = JSON.parse(message.Body);
            JSON.parse(body.Message);
          }
          return messages;
        },
      });
      consumer.on("message_processed", () => {
        deleted++;
        if (deleted === n) {
          consumers.forEach((c) => c.stop());
          resolve();
        }
      });
      consumer.on("error", (err) => console.error(err.message));
      consumers.push(consumer);
      consumer.start();
    }
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  console.log(JSON.stringify({
    bench: "consume_node", contender: "node", messages: n, concurrency, seconds,
    msgs_per_s: n / seconds, cpu_s: (cpu.user + cpu.system) / 1e6,
  }));
  process.exit(0);
}

main().catch((err) => { console.error(err); process.exit(1); });
