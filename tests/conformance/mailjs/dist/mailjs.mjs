// What Mailjs's tests.js imports as "./dist/mailjs.mjs": the published package, unchanged,
// pointed at burnbox by its two base URLs (as a user of Mailjs would point it).
import Mailjs from "@cemalgnlts/mailjs";

export default class BurnboxMailjs extends Mailjs {
    constructor(options) {
        super(options);
        this.baseUrl = process.env.MAILTM_BASE_URL;
        this.baseMercure = process.env.MAILTM_MERCURE_URL;
    }
}
