<?php
/**
 * Purchase → verification: the shops' paid-order actions fired with their documented data, the
 * link at the bridge (once per order), and the receipt's call to action.
 *
 * @package KycBridge
 */

namespace KycBridge\Tests;

use KycBridge\Bridge_Client;
use KycBridge\Purchases;

require_once __DIR__ . '/woocommerce-stub.php';
require_once __DIR__ . '/fluent-cart-stub.php';

/**
 * Purchases.
 */
class PurchasesTest extends TestCase {

	const INVESTOR_PRODUCT = 501;
	const CUSTOMER_PRODUCT = 502;
	const OTHER_PRODUCT    = 503;

	protected function setUp(): void {
		parent::setUp();
		\FluentCart\App\Models\Order::$stored   = array();  // the stand-in's "database"
		\FluentCart\App\Models\OrderMeta::$rows = array();
		$page = get_page_by_path( 'kyc-verify', OBJECT, 'page' );
		$this->settings(
			array(
				'shop_products' => self::INVESTOR_PRODUCT . " = investor\n" . self::CUSTOMER_PRODUCT . ' = customer',
				'verify_page'   => $page ? $page->ID : 0,
			)
		);
	}

	/**
	 * The kyc.link_requested jobs the bridge holds for a person.
	 *
	 * @param string $email Email.
	 * @return int
	 */
	private function links_for( $email ) {
		$person = Bridge_Client::from_settings()->contact( $email );
		if ( is_wp_error( $person ) ) {
			return 0;
		}
		return count( array_filter( array_column( $person['jobs'], 'event_type' ), fn( $type ) => 'kyc.link_requested' === $type ) );
	}

	/**
	 * Fluent Cart's order_paid_done data, as its developer docs show it (arrays).
	 *
	 * @param int    $order_id Order id.
	 * @param string $email    Buyer.
	 * @param int[]  $products Product ids.
	 * @return array
	 */
	private function fluent_cart_data( $order_id, $email, $products ) {
		return array(
			'order'       => array(
				'id'             => $order_id,
				'customer_id'    => 456,
				'payment_status' => 'paid',
				'total'          => 10000,
				'customer'       => array(),
				'order_items'    => array_map(
					fn( $id ) => array(
						'post_id'   => $id,
						'object_id' => $id * 10,
						'quantity'  => 1,
					),
					$products
				),
			),
			'customer'    => array(
				'email'      => $email,
				'first_name' => 'Finn',
			),
			'transaction' => array(),
		);
	}

	public function test_fluent_cart_paid_order_queues_one_link_and_the_receipt_asks_to_verify() {
		$email = 'fc-buyer@example.test';
		do_action( 'fluent_cart/order_paid_done', $this->fluent_cart_data( 9001, $email, array( self::OTHER_PRODUCT, self::INVESTOR_PRODUCT ) ) );
		$this->assertSame( 1, $this->links_for( $email ) );
		do_action( 'fluent_cart/order_paid_done', $this->fluent_cart_data( 9001, $email, array( self::INVESTOR_PRODUCT ) ) );
		$this->assertSame( 1, $this->links_for( $email ), 'the same order fired twice sends one link' );

		$html = $this->output(
			function () {
				do_action( 'fluent_cart/views/checkout_order_receipt', array( 'order' => array( 'id' => 9001 ) ) );
			}
		);
		$this->assertStringContainsString( 'class="kycb-order-cta" data-user-type="investor"', $html );
		$this->assertStringContainsString( 'We have emailed you a personal link', $html );
		$this->assertStringContainsString( 'href="' . esc_url( get_permalink( get_page_by_path( 'kyc-verify', OBJECT, 'page' ) ) ) . '"', $html );
		$this->assertSame( '', $this->output( fn() => do_action( 'fluent_cart/views/checkout_order_receipt', array( 'order' => array( 'id' => 9999 ) ) ) ) );
	}

	public function test_fluent_cart_models_as_objects_work_too() {
		$email = 'fc-object-buyer@example.test';
		$data  = array(
			'order'    => (object) array(
				'id'          => 9002,
				'order_items' => array( (object) array( 'post_id' => self::CUSTOMER_PRODUCT ) ),
				'customer'    => (object) array(
					'email'      => $email,
					'first_name' => 'Obi',
				),
			),
			'customer' => null,
		);
		do_action( 'fluent_cart/order_paid_done', $data );
		$this->assertSame( 1, $this->links_for( $email ) );
		$this->assertSame( 'Obi', Bridge_Client::from_settings()->contact( $email )['first_name'] );
	}

	public function test_verified_buyers_and_other_products_get_nothing() {
		$investor = self::fixtures()['people']['approved_investor']['email'];
		$before   = $this->links_for( $investor );
		// Enhanced covers a basic product, and the investor product itself.
		do_action( 'fluent_cart/order_paid_done', $this->fluent_cart_data( 9003, $investor, array( self::CUSTOMER_PRODUCT ) ) );
		do_action( 'fluent_cart/order_paid_done', $this->fluent_cart_data( 9004, $investor, array( self::INVESTOR_PRODUCT ) ) );
		$this->assertSame( $before, $this->links_for( $investor ) );
		$this->assertSame( '', $this->output( fn() => do_action( 'fluent_cart/views/checkout_order_receipt', array( 'order' => array( 'id' => 9004 ) ) ) ) );

		do_action( 'fluent_cart/order_paid_done', $this->fluent_cart_data( 9005, 'fc-other@example.test', array( self::OTHER_PRODUCT ) ) );
		$this->assertSame( 0, $this->links_for( 'fc-other@example.test' ) );
	}

	public function test_a_basic_verification_is_not_enough_for_an_enhanced_product() {
		$customer = self::fixtures()['people']['approved_customer']['email'];
		$before   = $this->links_for( $customer );
		do_action( 'fluent_cart/order_paid_done', $this->fluent_cart_data( 9006, $customer, array( self::INVESTOR_PRODUCT ) ) );
		$this->assertSame( $before + 1, $this->links_for( $customer ) );
	}

	public function test_woocommerce_payment_complete_and_thank_you_page() {
		$email                               = 'woo-buyer@example.test';
		$GLOBALS['kycb_test_orders'][ 7001 ] = new \KycbTestOrder(
			array(
				'id'          => 7001,
				'email'       => $email,
				'first_name'  => 'Wu',
				'product_ids' => array( self::CUSTOMER_PRODUCT ),
			)
		);
		do_action( 'woocommerce_payment_complete', 7001 );
		do_action( 'woocommerce_payment_complete', 7001 );
		$this->assertSame( 1, $this->links_for( $email ) );
		$html = $this->output( fn() => do_action( 'woocommerce_thankyou', 7001 ) );
		$this->assertStringContainsString( 'data-user-type="customer"', $html );
		$this->assertStringContainsString( 'Verify your identity', $html );
		do_action( 'woocommerce_payment_complete', 7999 );  // unknown order: nothing, no notice
	}

	public function test_product_settings_are_parsed_and_checked() {
		$parsed = \KycBridge\Settings::parse_products( "42 = investor\n\n7=customer\nabc = investor\n9 = astronaut" );
		$this->assertSame(
			array(
				42 => 'investor',
				7  => 'customer',
			),
			$parsed[0]
		);
		$this->assertSame( array( 'abc = investor', '9 = astronaut' ), $parsed[1] );
		$this->assertSame( 'investor', Purchases::user_type_for( array( self::CUSTOMER_PRODUCT, self::INVESTOR_PRODUCT ) ) );
	}

	public function test_a_held_order_waits_for_the_verification_and_is_released_after_the_approval() {
		$this->settings( array( 'hold_orders' => 1 ) );
		$email                               = 'woo-held@example.test';
		$GLOBALS['kycb_test_orders'][ 7101 ] = new \KycbTestOrder(
			array(
				'id'          => 7101,
				'email'       => $email,
				'first_name'  => 'Hal',
				'product_ids' => array( self::INVESTOR_PRODUCT ),
				'status'      => 'processing',
			)
		);
		$verified                            = self::fixtures()['people']['approved_investor']['email'];
		$GLOBALS['kycb_test_orders'][ 7102 ] = new \KycbTestOrder(
			array(
				'id'          => 7102,
				'email'       => $verified,
				'first_name'  => 'Ava',
				'product_ids' => array( self::INVESTOR_PRODUCT ),
				'status'      => 'processing',
			)
		);
		do_action( 'woocommerce_payment_complete', 7101 );
		do_action( 'woocommerce_payment_complete', 7102 );
		$held = $GLOBALS['kycb_test_orders'][ 7101 ];
		$this->assertSame( 'on-hold', $held->get_status() );
		$this->assertSame( 'investor', $held->get_meta( Purchases::HOLD_META ) );
		$this->assertStringContainsString( 'Awaiting identity verification', implode( ' ', $held->notes() ) );
		$this->assertSame( 'processing', $GLOBALS['kycb_test_orders'][ 7102 ]->get_status(), 'a verified buyer is not held' );

		$this->assertSame( 0, Purchases::release_orders() );  // not verified yet
		$this->assertSame( 'on-hold', $held->get_status() );

		// The bridge now answers "approved as investor": the hourly run releases the order.
		\KycBridge\Kyc_Lookup::forget( $email );
		$this->assertNotFalse( wp_next_scheduled( Purchases::CRON ), 'scheduled on activation' );
		$approved = array(
			'status'    => 'approved',
			'user_type' => 'investor',
			'level'     => 'enhanced',
		);
		$this->with_kyc_answer( $email, $approved, fn() => do_action( Purchases::CRON ) );
		$this->assertSame( 'processing', $held->get_status() );
		$this->assertSame( '', $held->get_meta( Purchases::HOLD_META ) );
		$this->assertStringContainsString( 'Identity verified: released', implode( ' ', $held->notes() ) );
	}

	/**
	 * A Fluent Cart order as fluent_cart/order_paid_done passes it (docs/hooks/actions/orders.md:
	 * an Order model with its customer; see fluent-cart-stub.php for the documented shapes).
	 *
	 * @param int    $id       Order id.
	 * @param string $email    Buyer.
	 * @param int[]  $products Product ids.
	 * @param string $status   The order's status after payment.
	 * @return \FluentCart\App\Models\Order
	 */
	private function fluent_cart_order( $id, $email, $products, $status ) {
		return new \FluentCart\App\Models\Order(
			array(
				'id'             => $id,
				'status'         => $status,
				'customer_id'    => $id + 1000,
				'payment_status' => 'paid',
				'total_amount'   => 10000,
				'customer'       => new \FluentCart\App\Models\Customer(
					array(
						'id'         => $id + 1000,
						'email'      => $email,
						'first_name' => 'Fay',
					)
				),
				'order_items'    => array_map(
					fn( $product ) => new \FluentCart\App\Models\OrderItem(
						array(
							'post_id'   => $product,
							'object_id' => $product * 10,
							'quantity'  => 1,
						)
					),
					$products
				),
			)
		);
	}

	/**
	 * Fire order_paid_done with the documented data: {order, transaction, customer}.
	 *
	 * @param \FluentCart\App\Models\Order $order Order.
	 */
	private function fluent_cart_paid( $order ) {
		do_action(
			'fluent_cart/order_paid_done',
			array(
				'order'       => $order,
				'transaction' => new \FluentCart\App\Models\OrderTransaction(
					array(
						'order_id' => $order->id,
						'status'   => 'succeeded',
						'total'    => 10000,
					)
				),
				'customer'    => $order->customer,
			)
		);
	}

	public function test_a_held_fluent_cart_order_waits_for_the_verification_and_gets_its_status_back_after_the_approval() {
		$this->settings( array( 'hold_orders' => 1 ) );
		$email    = 'fc-held@example.test';
		$held     = $this->fluent_cart_order( 9101, $email, array( self::INVESTOR_PRODUCT ), 'completed' );
		$verified = $this->fluent_cart_order( 9102, self::fixtures()['people']['approved_investor']['email'], array( self::INVESTOR_PRODUCT ), 'processing' );
		$other    = $this->fluent_cart_order( 9103, 'fc-other-held@example.test', array( self::OTHER_PRODUCT ), 'processing' );
		$this->fluent_cart_paid( $held );
		$this->fluent_cart_paid( $verified );
		$this->fluent_cart_paid( $other );
		$this->fluent_cart_paid( $held );  // fired again (Action Scheduler retries): held once, one link
		$this->assertSame( 'on-hold', $held->status );
		$this->assertSame(
			array(
				'user_type' => 'investor',
				'status'    => 'completed',
			),
			$held->getMeta( Purchases::HOLD_META )
		);
		$this->assertSame( array( 'Awaiting identity verification' ), array_column( $held->logs, 'title' ) );
		$this->assertSame( 1, $this->links_for( $email ) );
		$this->assertSame( 'processing', $verified->status, 'a verified buyer is not held' );
		$this->assertSame( 'processing', $other->status, 'nor an order without a configured product' );
		$this->assertFalse( $verified->getMeta( Purchases::HOLD_META ) );

		// Array-shaped hook data (as older docs show it): the order model is looked up by id.
		$array_order = $this->fluent_cart_order( 9104, 'fc-array-held@example.test', array( self::CUSTOMER_PRODUCT ), 'processing' );
		do_action( 'fluent_cart/order_paid_done', $this->fluent_cart_data( 9104, 'fc-array-held@example.test', array( self::CUSTOMER_PRODUCT ) ) );
		$this->assertSame( 'on-hold', $array_order->status );

		$this->assertSame( 0, Purchases::release_orders() );  // nobody verified yet
		$this->assertSame( 'on-hold', $held->status );

		// An admin released 9104 by hand meanwhile: the hourly run leaves it alone.
		$array_order->updateStatus( 'status', 'completed' );
		// The bridge now answers "approved as investor": the hourly run gives the order its status back.
		\KycBridge\Kyc_Lookup::forget( $email );
		$approved = array(
			'status'    => 'approved',
			'user_type' => 'investor',
			'level'     => 'enhanced',
		);
		$this->with_kyc_answer( $email, $approved, fn() => do_action( Purchases::CRON ) );
		$this->assertSame( 'completed', $held->status );
		$this->assertFalse( $held->getMeta( Purchases::HOLD_META ) );
		$this->assertSame( array( 'Awaiting identity verification', 'Identity verified' ), array_column( $held->logs, 'title' ) );
		$this->assertSame( 'completed', $array_order->status );
		$this->assertSame( 0, Purchases::release_orders(), 'released once' );
	}

	public function test_a_new_user_of_a_configured_role_is_sent_to_verify_and_pending_until_verified() {
		$this->settings( array( 'register_roles' => "subscriber = customer\ncontributor = contributor" ) );
		$email = 'new-member@example.test';
		$id    = $this->user( $email, 'subscriber', 'Nora' );
		$this->assertSame( 'customer', get_user_meta( $id, \KycBridge\Registration::META, true ) );
		$this->assertTrue( kycb_is_pending_verification( $id ) );
		$this->assertSame( 1, $this->links_for( $email ) );
		wp_set_current_user( $id );
		$this->assertStringContainsString( 'Your account waits for your identity verification (Customer)', do_shortcode( '[kyc_status]' ) );

		// A role without a rule, and a user who is verified already: nothing.
		$editor = $this->user( 'new-editor@example.test', 'editor' );
		$this->assertFalse( kycb_is_pending_verification( $editor ) );
		$approved = $this->user( self::fixtures()['people']['approved_customer']['email'], 'subscriber' );
		$this->assertFalse( kycb_is_pending_verification( $approved ) );
	}

	public function test_registration_roles_are_parsed_against_the_sites_roles() {
		$parsed = \KycBridge\Settings::parse_roles( "subscriber = customer\nwizard = investor\neditor = astronaut" );
		$this->assertSame( array( 'subscriber' => 'customer' ), $parsed[0] );
		$this->assertSame( array( 'wizard = investor', 'editor = astronaut' ), $parsed[1] );
	}
}
