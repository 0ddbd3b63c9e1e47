// Validate a .glb/.gltf with the Khronos glTF validator; prints the JSON report on stdout.
const fs = require("fs");
const validator = require("gltf-validator");

const path = process.argv[2];
validator
  .validateBytes(new Uint8Array(fs.readFileSync(path)), { maxIssues: 100 })
  .then((report) => console.log(JSON.stringify(report)))
  .catch((err) => {
    console.error(String(err));
    process.exit(2);
  });
