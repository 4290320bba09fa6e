// How dependency-cruiser resolves the project's own import aliases (package.json
// "imports": #src/*, #jobs/*, #modules/*) to the sources, not to dist/ where Node
// finds them at run time. Used by .dependency-cruiser.cjs (webpackConfig).
const path = require('node:path');

const root = path.resolve(__dirname, '../..');

module.exports = {
  resolve: {
    alias: {
      '#src': path.join(root, 'src'),
      '#jobs': path.join(root, 'jobs'),
      '#modules': path.join(root, 'modules'),
    },
  },
};
