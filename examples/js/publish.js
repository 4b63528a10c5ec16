// Publish one touchpoint to the journey orchestrator from Node.js with kafkajs.
//
//   npm install && KAFKA_BOOTSTRAP=127.0.0.1:9092 node publish.js
//
// The contract is one JSON object per message on `touchpoints.<channel>`, keyed by the best
// identifier you have (customer id, else anonymous id). See docs/channel-apps.md.
const crypto = require("node:crypto");
const { Kafka, Partitioners, logLevel } = require("kafkajs");

const brokers = (process.env.KAFKA_BOOTSTRAP || "127.0.0.1:9092").split(",");
const prefix = process.env.JOURNEY_TOUCHPOINTS_PREFIX || "touchpoints.";

const event = {
  event_id: crypto.randomUUID(),
  type: "cart.item_added",
  channel: "web",
  occurred_at: new Date().toISOString(),
  anonymous_id: process.env.ANONYMOUS_ID || "anon-js-example",
  properties: { sku: "SOFA-VELVET-GREEN", qty: 1, price: 899 },
  context: { locale: "fr-FR", timezone: "Europe/Paris" },
};

async function main() {
  const kafka = new Kafka({ clientId: "journey-js-example", brokers, logLevel: logLevel.WARN });
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  try {
    const [result] = await producer.send({
      topic: `${prefix}${event.channel}`,
      acks: -1,
      messages: [{ key: event.customer_id || event.anonymous_id, value: JSON.stringify(event) }],
    });
    console.log(`published ${event.event_id} to ${result.topicName}[${result.partition}]`);
  } finally {
    await producer.disconnect();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
